"""Tasks: the task file (`spec`: where the data is, which fields, parser and strategies) and reading data files
(`datasets`); the items they make are `engine.examples.Example`.
"""
