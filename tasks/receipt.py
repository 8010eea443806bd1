"""Receipt task: goods received at the warehouse."""
from tasks.base import register_tasks

# One task per row of the operation table whose resource is receipt (see worker.destinations).
TASKS = register_tasks(__name__)
