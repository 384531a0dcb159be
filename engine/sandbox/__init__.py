"""Model-written programs and arithmetic, run without trusting them.

`launch` runs a program in a child process inside every layer this machine allows: the bubblewrap box
(`box`), the child's own limits and seccomp filter (`runner`, whose text runs in the child together with the
audit hook `hook`), and reads back its one result line (`output`). `calculator` evaluates the arithmetic a
model wrote, without `eval`.
"""
