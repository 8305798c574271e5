"""The embedded development stack: one module per service wio dev starts, and the stack that wires them."""
