"""Tests of signing/: reference vectors, PHP rules, properties and a differential run against real PHP."""
