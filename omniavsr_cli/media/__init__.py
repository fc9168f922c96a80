"""The media front end: finding ffmpeg, probing, decoding audio and 25 fps video."""
