"""Writes the untrained demo model (random weights, the GRID word tokenizer) that tools/make_demo_model.sh trains:

python tools/init_demo_model.py OUT_DIR
"""

import sys
from pathlib import Path

from omniavsr_cli.synthetic.demo_model import init_demo_model

if __name__ == "__main__":
    print(init_demo_model(Path(sys.argv[1])))
