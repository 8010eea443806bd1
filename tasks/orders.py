"""Order task: lock or release outgoing order lines while the warehouse works on them."""
from tasks.base import register_tasks

# One task per row of the operation table whose resource is orders (see worker.destinations).
TASKS = register_tasks(__name__)
