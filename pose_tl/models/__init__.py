"""Task models composed functionally from a backbone and a head, with named outputs."""
