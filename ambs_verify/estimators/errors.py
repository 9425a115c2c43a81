"""The one exception type the estimators raise for bad input."""


class EstimatorInputError(ValueError):
    """Bad input to an estimator; the message is one line saying what was wrong and what is accepted."""
