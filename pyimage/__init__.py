"""pyimage: pull images from registries, store them as an OCI layout, unpack bundles.

Not built yet: this package is issue 7.  It will never import pyrunc; the bundle on
disk is the only contract between the two.
"""
__version__ = "0.1.0"
