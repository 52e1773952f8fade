"""aoeboot: boot a diskless Linux box from a root disk served over ATA over Ethernet."""

__version__ = "0.1.0"
