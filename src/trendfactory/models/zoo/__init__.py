"""The models, one file each: `models/zoo/<name>.py` is the model called <name>."""
