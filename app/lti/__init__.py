"""The LTI wire protocol, free of Flask: plain values in, plain values or named errors out."""
