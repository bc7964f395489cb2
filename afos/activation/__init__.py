"""Activation functions as torch modules: the sites a network holds, their kernels and their plain-data spec.

Owns :class:`~afos.activation.module.Activation` (an ``nn.Module`` computing a sympy expression of the
candidate space), its kernel paths (:mod:`afos.activation.kernels`: the eager chain, one fused autograd node,
or that node compiled) and :class:`~afos.activation.spec.ActivationSpec`, the plain data that names an
activation (expression, parameter starts, scope), crosses processes and is stored with every result.

Imports :mod:`afos.space` (parse, lower, derive, fingerprint) and torch; nothing above it."""

from __future__ import annotations
