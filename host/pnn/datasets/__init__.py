"""Data files shipped inside the package (see README.md here for sources, licences and what to cite)."""

from pathlib import Path

VOWELS = Path(__file__).resolve().parent / "vowels_hillenbrand_subset.csv"
