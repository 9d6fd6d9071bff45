"""Pure physics of the campaign: functions of pymatgen / ASE / numpy objects.

Nothing here imports jobflow, atomate2 or any coatflow module outside this package, so every function
can be called and tested on plain pymatgen objects, without a store or a calculator.
"""


class AnalysisError(ValueError):
    """A physics input that cannot be analysed (bad formula, missing reference, ...): a user-facing error."""
