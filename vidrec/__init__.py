"""vidrec: video action recognition with inflated 3D residual networks."""
__version__ = "0.1.0"
