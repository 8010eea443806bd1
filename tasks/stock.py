"""Stock task: a count (absolute) or an adjustment (relative) of one article in one warehouse."""
from tasks.base import register_tasks

# One task per row of the operation table whose resource is stock (see worker.destinations).
TASKS = register_tasks(__name__)
