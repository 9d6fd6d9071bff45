"""Reference structures built once: bcc Li, an isolated Li atom, and oxidation states guessed from a bulk.

bcc Li: a = 3.51 Å, the experimental room-temperature lattice parameter (3.509 Å at 20 °C; R. W. G.
Wyckoff, *Crystal Structures* vol. 1, 1963). The 3.44-3.45 Å met elsewhere are low-temperature or DFT (PBE)
values, and a cubic 3.44 Å bcc Li is still used by a few tests as a quick metal. Every energy reference built
from it (mu_Li of the adsorption, cathode-voltage and defect stages, the Li metal of the surfaces stage)
is relaxed on its own calculator first, so the starting value does not change a relaxed number. Two uses
compute this cell as it is: the adsorption stage's optional DFT confirmation (a single point,
makers/adsorption.py ``confirm_with_dft``), and the surfaces stage with ``slab.relax_bulk: false``. There
the energy is that of the experimental lattice, which for PBE lies a few meV/atom above its own minimum.
"""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

LI_BCC_A = 3.51  # Å, experimental room-temperature bcc Li (see the module docstring)


def bcc_li(a: float = LI_BCC_A) -> Structure:
    """Conventional 2-atom bcc Li cell (Im-3m), the chemical-potential reference of Li metal.

    Args:
        a: cubic lattice parameter (Å).
    """
    return Structure(Lattice.cubic(a), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def isolated_li(box: float = 15.0) -> Structure:
    """One Li atom at the centre of a cubic box of side ``box`` (Å): a labelled extra, not a reference."""
    return Structure(Lattice.cubic(box), ["Li"], [[0.5, 0.5, 0.5]])


def guessed_oxidation_states(structure: Structure) -> dict[str, float]:
    """Oxidation state of each element from pymatgen's most probable charge-balanced guess.

    Returns all zeros when no guess exists (intermetallics), which is what
    ``Structure.add_oxidation_state_by_guess`` would assign: then every slab of it reads non-polar.
    """
    comp = structure.composition.element_composition
    guesses = comp.oxi_state_guesses()
    if guesses:
        return {el: float(ox) for el, ox in guesses[0].items()}
    return {el.symbol: 0.0 for el in comp}
