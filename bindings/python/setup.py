"""Packaging of the quartz binding (pure Python over ctypes: nothing is compiled).

    /usr/bin/python3 -m pip install ./bindings/python        # offline with Debian's setuptools

The package does not contain libquartz; it finds it at run time (QUARTZ_LIBRARY,
next to the package, or the installed libquartz.so.1). To bundle a library
into the package, set QUARTZ_BUNDLE_LIBRARY=/path/to/libquartz.so.1 while
building: it is copied next to quartz/__init__.py, where the lookup finds it.
"""
import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_bundle(build_py):
    def run(self):
        super().run()
        lib = os.environ.get("QUARTZ_BUNDLE_LIBRARY")
        if lib:
            dest = os.path.join(self.build_lib, "quartz", "libquartz.so.1")
            self.announce("bundling %s as %s" % (lib, dest), level=2)
            shutil.copyfile(lib, dest)


here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "README.md"), encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="quartzdb",
    version="1.1.0",
    description="Python binding of libquartz, an embeddable vector database (HNSW), over ctypes",
    long_description=long_description,
    long_description_content_type="text/markdown",
    license="MIT",
    packages=["quartz"],
    python_requires=">=3.8",
    install_requires=["numpy"],
    cmdclass={"build_py": build_py_bundle},
    zip_safe=False,
    classifiers=[
        "Programming Language :: Python :: 3",
        "License :: OSI Approved :: MIT License",
        "Operating System :: POSIX :: Linux",
        "Topic :: Database",
    ],
)
