"""Colouring films and photos: the engine, the frame loop, shots, references, temporal smoothing, previews."""
