"""Test flow."""
from vortex.flow import Flow, Field, State, Budget, D, G, P, N, maximum, softmax, zeros

X = 4
