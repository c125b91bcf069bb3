"""The flaglens application: the command line, the server's composition and its periodic round.

Nothing imports this package; it wires the others together.
"""
