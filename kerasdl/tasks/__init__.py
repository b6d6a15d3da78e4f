"""Tasks: one module per kind of learning behind one contract (:mod:`.base`).

    from kerasdl.tasks import get_task, list_tasks
    task = get_task("vae", config, info)

Importing this package imports neither Keras nor TensorFlow.
"""

from kerasdl.tasks.base import (Endpoint, Task, get_task, list_tasks, register_task, resolve_task, task_class,
                                task_name)

__all__ = ["Endpoint", "Task", "get_task", "list_tasks", "register_task", "resolve_task", "task_class", "task_name"]
