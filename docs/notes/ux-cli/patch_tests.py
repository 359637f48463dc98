"""tests/unit/test_check_cmd.py checks config output only: those runs get --offline (check now
also verifies kubectl, the kubeconfig and contexts, which a hermetic test home does not have)."""
import sys

path = sys.argv[1]
s = open(path).read()
n = s.count('["check"') + s.count('run_cli("check"') + s.count("['check', ")
s = s.replace('["check"', '["check", "--offline"').replace('run_cli("check"', 'run_cli("check", "--offline"')
s = s.replace("['check', ", "['check', '--offline', ")
open(path, "w").write(s)
print(f"{path}: {n} check runs now --offline")
