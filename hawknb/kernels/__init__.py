"""Pure analysis kernels: functions on frames and tensors returning small typed results.

One topic per module. Kernels never import widget or triage code.
"""
