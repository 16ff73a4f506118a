"""Authorization engine (pure): Cedar policies, deny by default, RBAC + ABAC.

Built-in policies live as package data in ``bastion/authz/policies/*.cedar`` and are validated
against ``schema.cedarschema``; operators add their own ``.cedar`` files. :class:`Authorizer`
answers :meth:`~Authorizer.is_authorized` with a :class:`~bastion.domain.access.Decision` that
names the determining policies and explains them.
"""

from __future__ import annotations

from bastion.authz.authorizer import Authorizer, Explanation
from bastion.authz.policies import PolicyBundle, PolicyInfo, load_policies

__all__ = ["Authorizer", "Explanation", "PolicyBundle", "PolicyInfo", "load_policies"]
