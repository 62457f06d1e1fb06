"""Tests of the wmbus package alone: the library, with no Home Assistant."""
