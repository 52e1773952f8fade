"""A home NAS and a diskless box in a few network namespaces: what tests, benches and the demo
run on.

Not part of the installed product. Everything it makes, it also tears down.
"""
