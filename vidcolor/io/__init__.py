"""Reading and writing media: the video reader and writer, resumable film segments, still images, atomic outputs."""
