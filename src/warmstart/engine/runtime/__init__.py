"""Code that runs inside execution environments (and the zygote that forks them).

Standard library only, and importable on every Python the Lambda runtimes use (3.9+): this
package is all of warmstart an environment ever loads.
"""
