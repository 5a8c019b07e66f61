"""The paper's datasets (MSLS, Nordland, Oxford RobotCar) as the VPR folder convention the maps and eval read.

The datasets cannot be downloaded by jist-edge (their licences ask for a form or an account);
a user downloads them and `jist-edge dataset import` rewrites their layout: image folders whose
file names carry the position, ``...@easting@northing@...@``, one folder per pass.
"""
