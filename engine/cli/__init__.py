"""`python -m engine ...`: the command line and the verbs that only it uses (demo, render, check).

The library never imports from here; `main.py` parses the arguments and calls into the library.
"""
