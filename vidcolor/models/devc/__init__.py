"""Deep Exemplar-based Video Colorization (Zhang et al., CVPR 2019): the networks
(``network``) and the import of the authors' release (``release``)."""
