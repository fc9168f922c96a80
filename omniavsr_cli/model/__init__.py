"""The Omni-AVSR model: configuration, input transforms, encoders, compression, the LLM with Omni-LoRA.

docs/model.md describes the architecture and where it deliberately differs from the official code.
"""
