"""lanework: Python side of lanework (CONTRACT sections 10 and 11)."""
from lanework import handler
from lanework.handler import Fail
