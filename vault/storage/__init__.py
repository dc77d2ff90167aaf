"""Persistence: the only package (with migrations/) that imports SQLAlchemy."""
