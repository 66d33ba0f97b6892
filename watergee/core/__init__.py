"""Foundations every other layer builds on: settings, errors, the stage contract and its runner,
records, output layout, atomic writes, tile lists and clusters. Imports nothing above it."""
