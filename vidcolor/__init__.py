"""vidcolor: colour for black-and-white film and photographs."""

__version__ = "0.1.0"
