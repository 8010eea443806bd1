"""Inventory task: package data (weight, volume, dimensions) of one article."""
from tasks.base import register_tasks

# One task per row of the operation table whose resource is inventory (see worker.destinations).
TASKS = register_tasks(__name__)
