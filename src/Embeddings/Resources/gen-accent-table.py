#!/usr/bin/env python3
"""Writes accents.tsv: for every code point whose canonical decomposition (NFD) differs from itself, the
decomposition with its nonspacing marks (category Mn) removed, as BERT's uncased normaliser strips accents.
Hangul syllables are left out (decomposed by formula in code). .NET's invariant globalization mode does not
normalise, so the table ships with the library. Run: python3 gen-accent-table.py > accents.tsv"""
import sys
import unicodedata

print(f"# NFD minus Mn, Unicode {unicodedata.unidata_version}; code point <TAB> replacement code points (hex, space-separated; empty = dropped)")
for cp in range(0x110000):
    if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3:
        continue
    c = chr(cp)
    d = unicodedata.normalize("NFD", c)
    if d == c:
        continue
    kept = [x for x in d if unicodedata.category(x) != "Mn"]
    print(f"{cp:X}\t{' '.join(f'{ord(x):X}' for x in kept)}")
