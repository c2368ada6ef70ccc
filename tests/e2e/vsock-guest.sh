# SPDX-License-Identifier: GPL-2.0
# Guest half of tests/e2e/test_vsock.py (installed as /tests/vsock.sh): echo on vsock port
# 5000, then greet the host on port 6000.
/tests/vsock_echo 5000 6000
