"""DDColor (Kang et al., ICCV 2023): the network (``network``, registered as ``ddcolor``) and
the import of the authors' released checkpoints (``release``)."""

from vidcolor.models.ddcolor import network  # noqa: F401  (registers itself)
