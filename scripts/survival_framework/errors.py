"""Exceptions raised for bad input, each naming the file, column and problem."""

from __future__ import annotations

__all__ = ["InputValidationError"]


class InputValidationError(ValueError):
    """A user's table or configuration cannot be used.

    The message always names the file, the column (when one is involved) and the
    problem, so that the first line of a failed validation job tells the user what to fix.

    Parameters
    ----------
    path : str
        File the problem was found in.
    problem : str
        What is wrong, in plain words.
    column : str, optional
        Column concerned, if any.
    """

    def __init__(self, path: str, problem: str, column: str | None = None) -> None:
        self.path = str(path)
        self.column = column
        self.problem = problem
        where = f"{self.path}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")
