"""Dispatch tasks: a shipment packed (create, vendor create), changed, published or withdrawn."""
from tasks.base import register_tasks

# One task per row of the operation table whose resource is dispatch (see worker.destinations).
TASKS = register_tasks(__name__)
