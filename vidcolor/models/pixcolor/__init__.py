"""PixColor: Pixel Recursive Colorization (Guadarrama, Dahl, Bieber, Norouzi, Shlens and
Murphy, BMVC 2017): ``--auto --model pixcolor``.

Colour is of much lower spatial frequency than luminance, so it suffices to draw a plausible
*low-resolution* colour image and let a feedforward CNN bring it to full size (section 3).
Three networks (figure 4, table 2):

* the **conditioning network** (with the *adaptation network*, its last three 3x3
  convolutions) turns the grey picture, resized to ``input_size`` square, into features on
  the ``size x size`` grid (a small ResNet of stride 8; the paper uses ResNet-101):
  ``conditioning``;
* the **conditional PixelCNN** models the ``size x size`` chroma image in YCbCr, Cr and Cb
  each quantised into ``bins`` bins (``chroma``), pixel by pixel in raster order and Cr
  before Cb::

      p(y | x) = prod_i p(y(i,r) | y(1:i-1,:), x) p(y(i,b) | y(i,r), y(1:i-1,:), x)

  It is a gated PixelCNN (van den Oord et al. 2016): a masked first layer (type A), gated
  blocks each with a vertical stack (the rows above) and a horizontal stack (the pixels to
  the left in the row), the features added to every gate, then two masked 1x1 layers giving
  ``bins``-way logits for Cr and for Cb (``layers``, ``pixelcnn``); it is drawn from with
  cached activations (``sampling``);
* the **refinement network** takes the grey picture at a working resolution (short side
  ``refine_size``) and the low-resolution chroma upsampled bilinearly, and predicts the
  full-resolution chroma, starting at plain bilinear upsampling (``refinement``).

``model`` holds ``PixColor``, the three together, registered as ``pixcolor``: sampling,
colorizing and the training losses.
"""

from vidcolor.models.pixcolor.chroma import CB, CR, bin_centres, chroma_to_ab, quantize, rgb_to_chroma
from vidcolor.models.pixcolor.model import PixColor
from vidcolor.models.pixcolor.sampling import CachedSampler, pick_bins, sampling_uniforms
from vidcolor.ops.color import lightness_to_grey as grey_level

__all__ = [
    "CB",
    "CR",
    "CachedSampler",
    "PixColor",
    "bin_centres",
    "chroma_to_ab",
    "grey_level",
    "pick_bins",
    "quantize",
    "rgb_to_chroma",
    "sampling_uniforms",
]
