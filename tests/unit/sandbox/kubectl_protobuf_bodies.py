"""Request bodies captured from kubectl 1.33 against the sandbox API server, byte for byte.

Captured by logging what reached the sandbox for: `create configmap settings --from-literal=a=b --from-literal=c=d`,
`create configmap files --from-file=txt.txt --from-file=bin.dat` (bin.dat: 64 random bytes),
`create configmap inns -n team-a --from-literal=x= --append-hash`, `create secret generic token --from-literal=t=x
--type=Opaque`, `create secret docker-registry reg --docker-server=r.io --docker-username=u --docker-password=p`,
`create serviceaccount robot`, `create namespace team-a`, `create service clusterip web --tcp=80:8080` and
`create token robot --audience=a1 --audience=a2 --duration=20m --bound-object-kind=Secret --bound-object-name=token`.
"""

CONFIGMAP_FROM_LITERALS = (
    b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12*\n\x18\n\x08settings\x12\x00\x1a\x00"\x00*\x002\x008\x00B'
    b'\x00\x12\x06\n\x01a\x12\x01b\x12\x06\n\x01c\x12\x01d\x1a\x00"\x00'
)
CONFIGMAP_FROM_FILES = (
    b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12}\n\x15\n\x05files\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
    b"\x12\x17\n\x07txt.txt\x12\x0chello\nworld\n\x1aK\n\x07bin.dat\x12@\xd44~f\rI\xfd8g\xab\xa7\xe6\xfbL"
    b"\xb5\x1ah\xe5i\\\x1d7\xa7\n\xb6\xb7\xc9\xb1\x01=\x07n\x8a\x83Tr\x7f}\x16\xcb\xe48\xd5f\x9e\x02i<\xc8"
    b'\xfdtm\x9e\x17\xa7\xc0\x83.X\x83\x00\t\xb3e\x1a\x00"\x00'
)
CONFIGMAP_IN_NAMESPACE_WITH_HASH = (
    b'k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12.\n%\n\x0finns-g8gmdgtdf8\x12\x00\x1a\x06team-a"\x00*\x002'
    b'\x008\x00B\x00\x12\x05\n\x01x\x12\x00\x1a\x00"\x00'
)
SECRET_GENERIC = (
    b'k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\'\n\x15\n\x05token\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00'
    b'\x12\x06\n\x01t\x12\x01x\x1a\x06Opaque\x1a\x00"\x00'
)
SECRET_DOCKER_REGISTRY = (
    b'k8s\x00\n\x0c\n\x02v1\x12\x06Secret\x12\x8c\x01\n\x13\n\x03reg\x12\x00\x1a\x00"\x00*\x002\x008\x00B'
    b'\x00\x12U\n\x11.dockerconfigjson\x12@{"auths":{"r.io":{"username":"u","password":"p","auth":"dTpw"}}'
    b'}\x1a\x1ekubernetes.io/dockerconfigjson\x1a\x00"\x00'
)
SERVICE_ACCOUNT = (
    b'k8s\x00\n\x14\n\x02v1\x12\x0eServiceAccount\x12\x17\n\x15\n\x05robot\x12\x00\x1a\x00"\x00*\x002\x008'
    b'\x00B\x00\x1a\x00"\x00'
)
NAMESPACE = (
    b'k8s\x00\n\x0f\n\x02v1\x12\tNamespace\x12\x1e\n\x16\n\x06team-a\x12\x00\x1a\x00"\x00*\x002\x008\x00B'
    b'\x00\x12\x00\x1a\x02\n\x00\x1a\x00"\x00'
)
SERVICE_CLUSTER_IP = (
    b'k8s\x00\n\r\n\x02v1\x12\x07Service\x12i\n\x1f\n\x03web\x12\x00\x1a\x00"\x00*\x002\x008\x00B\x00Z\n'
    b'\n\x03app\x12\x03web\x12B\n\x1b\n\x0780-8080\x12\x03TCP\x18P"\x07\x08\x00\x10\x90?\x1a\x00(\x00\x12'
    b'\n\n\x03app\x12\x03web\x1a\x00"\tClusterIP:\x00B\x00R\x00Z\x00`\x00h\x00\x1a\x02\n\x00\x1a\x00"\x00'
)
TOKEN_REQUEST = (
    b'k8s\x00\n(\n\x18authentication.k8s.io/v1\x12\x0cTokenRequest\x12<\n\x10\n\x00\x12\x00\x1a\x00"\x00*'
    b'\x002\x008\x00B\x00\x12"\n\x02a1\n\x02a2\x1a\x15\n\x06Secret\x12\x02v1\x1a\x05token"\x00 \xb0\t\x1a'
    b'\x04\n\x00\x12\x00\x1a\x00"\x00'
)
