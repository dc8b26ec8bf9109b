"""Small pure operations on pictures and colours, below everything else: colour spaces, guided upsampling, ab bins."""
