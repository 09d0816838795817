"""Step 2 of the method: find the activations of any model and replace them.

:func:`replace_activations` works on the user's own module tree, in place:

* **activation modules** (``nn.ReLU``, ``nn.GELU``, ...) anywhere in the tree
  are swapped in their parent (``parent._modules[name]``), so the state dict
  gains only the adaptive parameters under the activation's own name;
* **functional calls** (``F.relu``, ``torch.sigmoid``, ``x.relu_()``, ...) and
  **modules called at several places** are found by tracing, with
  ``torch.fx``, the forward of each module that is not a ``torch.nn`` class,
  with its children kept as leaves. Only a module whose own forward makes such
  a call is rewritten. It keeps its class, attributes and state dict keys.
  It gains one adaptive child per call site, named after the fx node (such
  as ``relu`` or ``relu_1``), and an instance-level ``forward`` generated
  from the rewritten graph. :func:`restore_activations` deletes that
  ``forward`` again.

.. note::
    Limits of the fx route: a module whose forward cannot be traced (data
    dependent control flow, for example) is left as it is. The report and a
    :class:`~reactivate.errors.ReactivateWarning` name it when its source
    calls an activation function, and ``strict_trace=True`` makes that an
    error. Tracing specialises Python control flow on the traced path, so
    ``if mask is None`` branches are fixed as traced. Pass ``example_input``
    to check that the rewritten model computes what the original did. The
    forward of ``torch.nn`` classes (such as ``nn.TransformerEncoderLayer``,
    which calls ``F.relu`` itself) is never rewritten. A rewritten module
    contains a generated ``forward`` that pickling cannot store, so save such
    models as a state dict plus :func:`replacement_spec` (``copy.deepcopy``
    works). ``nn.DataParallel`` replicas would share the generated forward
    of the original module, so use ``DistributedDataParallel`` with a
    rewritten model.
"""

from .engine import replace_activations, restore_activations
from .report import ReplacedSite, ReplacementReport, SkippedSite
from .spec import SPEC_FORMAT, reapply_replacement, replacement_spec

__all__ = [
    "ReplacementReport",
    "ReplacedSite",
    "SkippedSite",
    "replace_activations",
    "restore_activations",
    "replacement_spec",
    "reapply_replacement",
    "SPEC_FORMAT",
]
