"""Tests of the joint-modeling code that runs in the jail: templates, custom code, scoring."""
