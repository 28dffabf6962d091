"""The presets: one module per model family, each a `FlowModel` assembled from `keras_models.layers`.

nice.py, realnvp.py, nsf.py (neural spline flows), glow.py, flow_plus_plus.py (with dequantization.py), maf.py
(MAF and IAF), planar_radial.py, prelu_flow.py; variational.py trains any of them on an energy. presets.py is the
registry the command line and the runs read. Flows import core and layers, never train or serving.
"""
