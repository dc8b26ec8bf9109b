"""The networks, each registered by name where it is defined (``registry``), with their
weights (``weights``) and the authors' released checkpoints (``official``). Importing this
package registers every network."""

from vidcolor.models import ddcolor, eccv16, larsson, pixcolor, siggraph17  # noqa: F401  (they register themselves)
