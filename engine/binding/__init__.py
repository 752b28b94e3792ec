"""Binding: SOP lines -> handlers (normalize, patterns, registry), planning, coverage, stubs."""
