"""Tasks: the task file (`spec`: where the data is, which fields, parser and strategies), reading data files
(`datasets`), a task's generator (`generators`: built-in by name, or the task file's own `FILE.py:NAME`) and
loading the Python a task file or `--chain` names (`user_code`); the items they make are
`engine.examples.Example`.
"""
