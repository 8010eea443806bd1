"""Inventory task: package data (weight, volume, dimensions) of one article."""
from tasks.base import delivery_task

update_packages = delivery_task("inventory.update_packages")
